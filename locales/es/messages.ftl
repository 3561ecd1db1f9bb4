# Los mensajes de Parent Connection a las familias, en español.
# Cada mensaje existe también en inglés (locales/en) y al revés (pruebas: i18n::tests).
# Los nombres, los títulos y el texto de los maestros no se traducen.

## Listas y fechas

list-and = { $first } y { $last }
list-separator = {", "}

# Una hora de entrega en el resumen: "lun 23 nov, 8:00".
due-time = { $weekday } { $day } { $month }, { $time }
# La fecha del asunto del resumen: "23 nov 2026".
subject-date = { $day } { $month } { $year }
# Horas y minutos en reloj de 24 horas: "8:00".
clock = { $hour24 }:{ $minute }

weekday-1 = lun
weekday-2 = mar
weekday-3 = mié
weekday-4 = jue
weekday-5 = vie
weekday-6 = sáb
weekday-7 = dom

month-1 = ene
month-2 = feb
month-3 = mar
month-4 = abr
month-5 = may
month-6 = jun
month-7 = jul
month-8 = ago
month-9 = sept
month-10 = oct
month-11 = nov
month-12 = dic

## Invitaciones

invitation-subject = { $teacher } le invitó a Parent Connection
invitation-hello = Hola, { $guardian }:
invitation-invited = { $teacher } le invitó a conversar sobre { $student } en Parent Connection, el medio con el que { $district } comunica a los maestros con los padres y tutores de sus estudiantes.
invitation-join-here = Únase aquí:
invitation-ignore = Si no esperaba este mensaje, puede ignorarlo; no pasa nada hasta que se una.
invitation-guardian-fallback = familia
invitation-student-fallback = su hijo o hija
invitation-sms = { $sender }: { $teacher } le invitó a conversar sobre { $student }. Únase: { $link } Responda STOP para no recibir más mensajes.

## El resumen semanal

digest-subject = { $tenant }: tareas de { $children } (semana del { $date })
digest-hello = Hola, { $guardian }:
digest-intro = Estas son las tareas de { $children } en { $tenant }: lo que se debía entregar la semana
    pasada y lo que se debe entregar la próxima semana. Las horas están en { $zone }.
digest-due-past = Para entregar la semana pasada:
digest-due-coming = Para entregar la próxima semana:
digest-points = { $count ->
        [one] ({ $points } punto)
       *[other] ({ $points } puntos)
    }
digest-why = Recibe este resumen semanal porque es padre, madre o tutor de
    { $children } en { $tenant }. Las preguntas sobre una tarea van al maestro de la clase.
digest-stop = Para dejar de recibir este resumen semanal, abra este enlace y confirme (las invitaciones
    y los mensajes de los maestros no cambian):

## Fechas en frases

# "20 de diciembre de 2026".
long-date = { $day } de { $month } de { $year }
month-long-1 = enero
month-long-2 = febrero
month-long-3 = marzo
month-long-4 = abril
month-long-5 = mayo
month-long-6 = junio
month-long-7 = julio
month-long-8 = agosto
month-long-9 = septiembre
month-long-10 = octubre
month-long-11 = noviembre
month-long-12 = diciembre

## Páginas

skip-to-content = Ir al contenido

## La página para unirse

join-title = Únase a Parent Connection
join-title-accepted = Invitación ya aceptada
join-hello = Hola, { $guardian }:
join-invited = { $teacher } le invitó a conversar sobre { $student } en Parent Connection, el medio con el que { $district } comunica a los maestros con los padres y tutores de sus estudiantes.
join-already = Ya aceptó la invitación de { $teacher } para conversar sobre { $student } en Parent Connection, el medio con el que { $district } comunica a los maestros con los padres y tutores de sus estudiantes.
join-valid-until = Esta invitación es válida hasta el { $date }.
join-accept = Aceptar
join-go = Ir a su página
join-ignore = Si no esperaba esta invitación, puede cerrar esta página; no pasa nada hasta que la acepte.
join-cancelled-title = Invitación cancelada
join-cancelled = Esta invitación se canceló: los registros de la escuela ya no le indican como contacto de este estudiante. Si cree que es un error, comuníquese con la escuela.
join-expired-title = Invitación vencida
join-expired = Esta invitación venció. Pida al maestro que le envíe una nueva.
join-joined-title = Se unió a Parent Connection
join-accepted = Aceptó la invitación de { $teacher } para conversar sobre { $student }.
join-reachable = Ahora el maestro puede comunicarse con usted en Parent Connection.

## La página para cancelar el resumen

unsubscribe-title = Cancelar el resumen semanal
unsubscribe-title-done = Canceló la suscripción
unsubscribe-ask = ¿Dejar de enviar el resumen semanal de tareas de { $district } a { $email }?
unsubscribe-unaffected = Las invitaciones y los mensajes de los maestros no cambian.
unsubscribe-button = Cancelar la suscripción
unsubscribe-done = { $email } ya no recibirá el resumen semanal de tareas de { $district }.
unsubscribe-your-address = su dirección
unsubscribe-undo = Las invitaciones y los mensajes de los maestros no cambian. La escuela puede volver a activar el resumen para usted.
unsubscribe-already = { $email } ya no recibe el resumen semanal de tareas de { $district }.

## La página del padre, madre o tutor (/guardian) y el marco de las páginas con sesión

nav-guardian = Su página
who-guardian = Padre, madre o tutor · { $tenant }
sign-out = Cerrar sesión
guardian-title = Su página
guardian-hello = Hola, { $name }.
guardian-children = Sus hijos y sus maestros
guardian-no-children = La escuela no tiene hijos registrados para usted en este momento.
guardian-no-teachers = No hay maestros registrados para { $child } en este momento.
guardian-chat-with = Conversar con { $teacher } sobre { $child }
guardian-chats = Sus conversaciones
guardian-no-chats = Todavía no tiene conversaciones.
guardian-chat-line = Sobre { $child } con { $teacher } · desde el { $date }
guardian-next-chats = Siguiente página de conversaciones
guardian-messages = Mensajes que recibe
guardian-digest = Resumen semanal de tareas
guardian-digest-off = Canceló la suscripción: { $email } no recibe el resumen semanal de las tareas de sus hijos.
guardian-digest-subscribe = Volver a suscribirse
guardian-digest-on = { $email } recibe el resumen semanal de las tareas de sus hijos cuando la escuela lo envía.
guardian-digest-unsubscribe = Cancelar la suscripción
guardian-digest-no-email = La escuela no tiene una dirección de correo electrónico suya, así que no recibe el resumen semanal.
guardian-sms = Mensajes de texto
guardian-sms-off = No enviamos mensajes de texto al { $mobile }.
guardian-sms-allow = Permitir mensajes de texto
guardian-sms-on = Podemos enviar mensajes de texto al { $mobile } (invitaciones de los maestros, códigos para iniciar sesión).
guardian-sms-stop = Dejar de recibir mensajes de texto
guardian-sms-no-mobile = La escuela no tiene un número de celular suyo.
guardian-language = Idioma
guardian-language-hint = El idioma de esta página, de sus invitaciones y de su resumen semanal.
guardian-language-default = El idioma de la escuela
guardian-language-save = Guardar el idioma
guardian-done-chat = Su conversación está abierta. El maestro la ve en Parent Connection.
guardian-done-digest-off = Canceló la suscripción al resumen semanal.
guardian-done-digest-on = Volverá a recibir el resumen semanal.
guardian-done-sms-off = No le enviaremos mensajes de texto.
guardian-done-sms-on = Volverá a recibir nuestros mensajes de texto.
guardian-done-language = Se guardó su idioma.
guardian-blocked = { $teacher } no acepta conversaciones con usted. Puede comunicarse con la escuela.

## Formularios

# The language named in itself (language links).
language-name = Español

form-problem = Hay un problema
form-error = Error

## Iniciar sesión con un código (/signin/code): antes de iniciar sesión, en el idioma del navegador

signin-language = Idioma
signin-code-title = Iniciar sesión con un código
signin-code-intro = Padres y tutores de estudiantes de { $district }: enviamos un código de 6 dígitos al correo electrónico o al número de celular que su escuela tiene registrado para usted. Escríbalo en la página siguiente, en este navegador, para iniciar sesión. No necesita contraseña.
signin-code-address = Correo electrónico o número de celular
signin-code-address-hint = El que su escuela tiene registrado para usted.
signin-code-address-invalid = Escriba su correo electrónico (como nombre@ejemplo.com) o su número de celular.
signin-code-send = Enviarme un código
signin-code-staff = El personal escolar inicia sesión con la cuenta del distrito en la
signin-code-staff-link = página de inicio de sesión
signin-verify-title = Escriba su código
# $minutes elige la forma del plural.
signin-verify-sent = { $minutes ->
        [one] Si { $district } tiene registrada esta dirección, le enviamos un código de 6 dígitos. El código sirve una vez, durante { $minutes } minuto.
       *[other] Si { $district } tiene registrada esta dirección, le enviamos un código de 6 dígitos. El código sirve una vez, durante { $minutes } minutos.
    }
signin-verify-code = Código
signin-verify-code-hint = Los 6 dígitos del mensaje que le enviamos.
signin-verify-six-digits = Escriba los 6 dígitos del mensaje que le enviamos.
signin-verify-refused = Ese código no es correcto o ya no sirve. Revise el mensaje e inténtelo de nuevo, o pida un código nuevo.
signin-verify-submit = Iniciar sesión
signin-verify-none = ¿No recibió el mensaje? Revise la dirección, espere un minuto o
signin-verify-again = pida un código nuevo
signin-which-title = ¿Qué distrito escolar?
signin-which = Esta página de inicio de sesión sirve a varios distritos escolares. Abra el enlace de inicio de sesión del sitio web de su escuela o de un mensaje de su escuela: indica su distrito.
signin-expired-title = Vuelva a empezar
signin-expired = Este formulario de inicio de sesión venció o no vino de este sitio. Pida un código nuevo.
signin-expired-link = Pedir un código

## El mensaje con el código para iniciar sesión

code-email-subject = Su código para iniciar sesión en Parent Connection
code-email-hello = Hola:
code-email-intro = Su código para iniciar sesión en Parent Connection ({ $district }) es:
code-email-how = { $minutes ->
        [one] Escríbalo en la página de inicio de sesión en el mismo navegador. Sirve una vez, durante { $minutes } minuto; solo sirve el último código que pidió.
       *[other] Escríbalo en la página de inicio de sesión en el mismo navegador. Sirve una vez, durante { $minutes } minutos; solo sirve el último código que pidió.
    }
code-email-ignore = Si no pidió un código, puede ignorar este mensaje: nadie puede iniciar sesión sin él.
code-sms = { $minutes ->
        [one] { $sender }: su código para iniciar sesión es { $code }. Sirve una vez, durante { $minutes } minuto. Responda STOP para no recibir más mensajes.
       *[other] { $sender }: su código para iniciar sesión es { $code }. Sirve una vez, durante { $minutes } minutos. Responda STOP para no recibir más mensajes.
    }
