"""The convert service: de-identified slides to DICOM WSI and pyramidal TIFF."""
