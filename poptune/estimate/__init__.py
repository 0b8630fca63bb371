"""Predicting a search's wall time before it runs (`poptune estimate`): the cost model of one
epoch, the simulation of a search's schedule over its slots, and the clock that measures a real
search's fixed costs so the prediction can be checked against it."""
