"""Alert delivery: channels, payloads, retries and what each channel was last told."""
