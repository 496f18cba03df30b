"""The interactive inspector (`qwen3vl-inspect IMAGE`). Only this package imports textual, lazily:
`launch` checks the arguments first and imports the App only when it is about to run."""
