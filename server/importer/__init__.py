"""The public surface that embed.js and the browser worker call."""
