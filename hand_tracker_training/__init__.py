"""Training pipeline of the hand_tracker detector: data, SSD MobileNet v2, evaluation, export."""
