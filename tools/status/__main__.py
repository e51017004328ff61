from tools.status.cli import main

raise SystemExit(main())
