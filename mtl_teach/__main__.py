from mtl_teach.cli import main

raise SystemExit(main())
