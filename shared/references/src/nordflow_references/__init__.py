"""Nordic payment references: Swedish OCR, Norwegian KID and factors' KID layouts."""
