"""Online stores: newest-wins writes and millisecond key lookups."""
