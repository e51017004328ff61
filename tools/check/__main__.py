from tools.check.cli import main

raise SystemExit(main())
