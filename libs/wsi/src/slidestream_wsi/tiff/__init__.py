"""TIFF structure: a bounded IFD walk and in-place patching."""
