"""``python -m habitat_fih.infer`` = ``fih-infer`` (habitat_fih.infer.cli)."""

from habitat_fih.infer.cli import main

raise SystemExit(main())
