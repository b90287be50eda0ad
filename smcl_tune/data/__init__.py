"""Data sources: image pools (synthetic, CIFAR, image folders, file lists) and long-tailed subsets."""
