"""Hyperparameter search (`gansim tune`): search spaces, the Tune trial driver, the study, its reports."""
