"""What `smcl-tune` exits with."""

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
