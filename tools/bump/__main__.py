from tools.bump.cli import main

raise SystemExit(main())
