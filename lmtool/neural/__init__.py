"""Recurrent language models: configuration, parameters and the network (forward and backward)."""

from .config import NetworkConfig
from .network import NetworkState, RecurrentNetwork

__all__ = ["NetworkConfig", "NetworkState", "RecurrentNetwork"]
