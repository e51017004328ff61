from tools.publish.cli import main

raise SystemExit(main())
