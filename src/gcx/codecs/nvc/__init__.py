"""nvc: learned video codec (formats/nvc.md)."""
