"""Tables of the referrals app."""
