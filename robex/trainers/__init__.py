"""Training: one loop (:func:`robex.trainers.fit.fit`) with pluggable losses
(:mod:`robex.trainers.losses`: cross-entropy, adversarial training; ATEX's distillation loss lives
with ATEX in :mod:`robex.defenses.atex`) and an optimiser / schedule from config
(:mod:`robex.trainers.optim`). The baseline model, FGSM adversarial training and ATEX all train
through it."""
