"""Classifiers (images in [0,1]; any normalisation happens inside the model), their training,
and the ReLU -> softplus(beta) transform."""
