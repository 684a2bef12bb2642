"""On-demand transforms: the only code that calls the functions of on-demand feature views."""
