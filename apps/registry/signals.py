"""Registry events for apps later in the dependency order (sent after the change commits)."""

from django.dispatch import Signal

# sender=PromotionRequest, promotion=<PromotionRequest>: its gates were evaluated and stored.
gates_evaluated = Signal()
# sender=PromotionRequest, promotion=<PromotionRequest>, approved=bool, actor=<User>: decided.
promotion_decided = Signal()
