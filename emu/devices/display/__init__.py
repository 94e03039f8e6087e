"""Display controllers: the ARM PrimeCell PL111 colour LCD controller."""
