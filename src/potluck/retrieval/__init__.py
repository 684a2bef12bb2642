"""Historical and online retrieval: resolving feature references and composing the stores."""
