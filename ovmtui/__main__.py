from ovmtui.cli import main

raise SystemExit(main())
