"""ntc: the learned hyperprior image codec (codec id 2). torch is imported only to encode or decode."""
