from tools.render.cli import main

raise SystemExit(main())
