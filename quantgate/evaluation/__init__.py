"""The evaluation: data (BEIR folders, the embedded set), scoring a variant, agreement with the reference, quality
through mteb, batch invariance, the validation split and accuracy control's tuning."""
