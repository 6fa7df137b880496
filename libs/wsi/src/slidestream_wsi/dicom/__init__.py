"""DICOM WSI (PS3.3 A.32.8): locating the pixel data, validating instances."""
