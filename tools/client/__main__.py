from tools.client.cli import main

raise SystemExit(main())
