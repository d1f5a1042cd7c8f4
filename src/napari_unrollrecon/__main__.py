from napari_unrollrecon.cli import main

raise SystemExit(main())
