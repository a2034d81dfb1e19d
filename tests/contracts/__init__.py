"""Runtime contracts: behaviour of what the program runs on (images, providers, orchestrators) that decides
whether a rendered stack works, each stated with its upstream source and checked on every rendered stack."""
