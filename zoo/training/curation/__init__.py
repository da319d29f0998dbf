"""Data curation: CC-Math extraction, G-Vendi, Prismatic Synthesis, CrossThink."""
