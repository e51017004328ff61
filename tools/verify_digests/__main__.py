from tools.verify_digests.cli import main

raise SystemExit(main())
