"""Use cases of factoring-gateway (``agreements``, ``decisions``, ``transfers``, ``uploads``,
``settlements``) on the ports of ``ports``."""
