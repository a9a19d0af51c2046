"""Operations callable without Typer: prepare the bundle, bring the stack up, rotate a secret, doctor, validate.
Each takes the stack and a Runtime (the shells it works through) and returns results for the CLI to present."""
