"""The screens: the inspector (stage list, picture, numbers) and the help overlay."""
