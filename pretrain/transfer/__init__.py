"""Transfer of pre-trained ViTs: fine-tuning and linear probing on image folders, ADE20K-style segmentation."""
