"""Executed at interpreter start through ``scsa_yolo-autoload.pth`` (placeholder)."""
