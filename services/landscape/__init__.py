"""Loss landscapes (Li et al. 2018): directions, grid tiles evaluated on workers, surfaces and plots.

`directions` draws and filter-normalizes the directions once per job; `tiles` cuts the grid into
tiles and evaluates one tile (`evaluate_tile`), which is all a tile task runs; `surface` puts the
tiles' points back together and `plots` draws them.
"""
