"""The scenario library: XML files that document, test and compare snapshot behaviour."""
