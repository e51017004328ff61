from tools.validate.cli import main

raise SystemExit(main())
