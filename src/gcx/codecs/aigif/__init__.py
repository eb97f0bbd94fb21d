"""aigif: images stored as the generation syntax that made them (codec id 3), see formats/aigif.md."""
