"""eSIM provisioning over GSMA SGP.22 ES2+: profiles and their install states, the ES2+ client, the SM-DP+ progress notifications and the built-in SM-DP+ simulator."""
