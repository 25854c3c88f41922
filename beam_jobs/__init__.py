"""Apache Beam jobs of logo-batch."""
