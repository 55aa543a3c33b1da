from xunjian.cli import main

raise SystemExit(main())
