"""habitat-fih's Hydra configs (installed as the resource package ``habitat_fih.configs``)."""
