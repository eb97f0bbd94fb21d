"""Entropy modelling shared by the learned codecs: integer tables built once, coded with constriction."""
