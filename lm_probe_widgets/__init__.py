"""Train linear probes on a language model's activations, and watch them learn."""
