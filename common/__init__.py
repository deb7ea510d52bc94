"""What the three atomshop services share: configuration, database, feed publisher and follower."""
