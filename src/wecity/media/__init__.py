"""Citizens' photos: checked by content, stripped of metadata, re-encoded, stored and served."""
