"""Neural-network building blocks shared by the learned codecs (ntc now, nvc later)."""
